"""What the proxy tells operators: Prometheus metrics and the JSON logs."""
