"""The write side: command schemas, the use cases that write rows and their events."""
