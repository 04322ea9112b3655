"""Delivery: the outbox table, its worker, and the email, SMS and webhook transports."""
