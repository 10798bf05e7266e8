"""The `iotcare` command line: operators' entry point to every process."""
