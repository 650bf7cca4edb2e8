"""Generative Playground: the app shell shared by every tab.

Importing it (or any of its modules) changes nothing in the process: the environment the server
needs (hub offline, no analytics, passive OpenMP waits) is set by the command line,
``playground.__main__.configure_environment``, before gradio or torch is imported there.
"""
