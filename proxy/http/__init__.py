"""The HTTP face: the ASGI app, the OpenAI endpoints, the admin API, the console, file
serving and the reading of request bodies."""
