"""Great Expectations suites for the data-quality flow, kept as code."""
