"""Rules that govern traffic, one module each (the governance issue brings them):
each a small object whose one entry point takes the call and its context and
allows, amends or refuses it with a reason. Policies never import `proxy`.
"""
