"""One request's life behind the HTTP face: the gateway a config version builds, auth,
the policy chain, routing, dispatch to providers, streaming, and the recording of it all."""
