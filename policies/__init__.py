"""Rules that govern traffic, one module each: each a small object whose one entry
point takes the call and its context and allows, amends or refuses it with a
reason, and which builds itself from the config (`from_config`, reading the
shape `config.py` declares). Policies never import `proxy`.
"""
