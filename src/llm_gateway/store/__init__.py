"""Storage the gateway keeps outside a request: Redis (shared breaker state)."""
