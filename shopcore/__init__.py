"""The shop analytics core: everything more than one function needs.

Data flows one way: trigger -> function (functions/*/main.py) -> shopcore -> Postgres/RabbitMQ.
"""
