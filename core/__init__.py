"""IoT Care shared library: settings, database, logging, contract, rules, queries."""
