"""The randomisation server (``trialkit serve``) and its client.

:mod:`trialkit.server.app` is an ASGI application (FastAPI, served by uvicorn) that holds the trial
keys and exposes the live service over HTTP to principals with tokens;
:mod:`trialkit.server.client` is the HTTP client the command line uses with ``--server``. Importing
this package imports neither FastAPI nor uvicorn.
"""
