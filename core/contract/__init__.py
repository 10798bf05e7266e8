"""The MQTT contract v1: catalogue of metrics, events and device types; topics; payloads."""
