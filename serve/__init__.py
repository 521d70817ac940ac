"""``sdrt serve``: engine bundles served on Ray Serve, speaking AUTOMATIC1111's and OpenAI's image APIs.

    requests.py    Settings and Job: one HTTP request as the model deployment runs it
    schemas.py     request and answer bodies as pydantic models named as A1111's and OpenAI's schemas
    fields.py      this server's limits and the check of extra fields, each error naming its field
    samplers.py    A1111's sampler names -> sdrt's schedulers
    catalog.py     the served bundles, read from their manifests (sizes, hashes), looked up by name
    a1111.py       /sdapi/v1/*: requests in, A1111's answers out
    openai_images.py /v1/images/generations and /v1/models
    images.py      base64 PNGs in and out
    http.py        the ingress deployment (Api): the catalogue, calls to the models, timeouts
    app.py         its FastAPI app: A1111's and OpenAI's routes, validation errors as 400s
    guard.py       the ASGI layer around it: request id, authentication, body cap, logs, JSON errors
    loopback.py    a local server's replicas bound to 127.0.0.1
    model.py       the model deployment: a pipeline per replica, dynamic batching by settings
    application.py the Ray Serve application (and the builder a Serve config file imports)

Above the runtime, below the CLI: it imports ``sdrt.runtime`` and Ray; the CLI imports it.
"""
