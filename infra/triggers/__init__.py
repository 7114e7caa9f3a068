"""What turns a trigger into a function invocation, for the local emulation and the GCP bridge."""
