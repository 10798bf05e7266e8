"""Where a batch is written: the SQL system of record and the optional InfluxDB sink."""
