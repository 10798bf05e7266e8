"""The MQTT ingest service: subscribe, parse, batch, write durably, then acknowledge."""
