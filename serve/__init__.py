"""``sdrt serve``: engine bundles served on Ray Serve, speaking AUTOMATIC1111's and OpenAI's image APIs.

    requests.py    Settings and Job: one HTTP request as the model deployment runs it
    fields.py      reading a JSON body's fields, each error naming its field (RequestError)
    samplers.py    A1111's sampler names -> sdrt's schedulers
    catalog.py     the served bundles, read from their manifests (sizes, hashes), looked up by name
    a1111.py       /sdapi/v1/*: requests in, A1111's answers out
    openai_images.py /v1/images/generations and /v1/models
    images.py      base64 PNGs in and out
    http.py        the ingress: routes, body cap, authentication, JSON errors, timeouts
    model.py       the model deployment: a pipeline per replica, dynamic batching by settings
    application.py the Ray Serve application (and the builder a Serve config file imports)

Above the runtime, below the CLI: it imports ``sdrt.runtime`` and Ray; the CLI imports it.
"""
