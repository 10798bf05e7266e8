"""Development kit shared by the tests and the benchmarks: throwaway databases, a private
Mosquitto, a TCP proxy that can cut a connection, and a local HTTP receiver. Not shipped."""
