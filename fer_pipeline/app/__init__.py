"""The paper's GUI, as a local web app: pick the network and the optimizer among the tracked runs,
drop a photo, see every face with its class probabilities and its occlusion map.

    make app                      # or: python -m fer_pipeline.app [--port 8000]

Everything it serves is in ``static/``; it fetches nothing from elsewhere.
"""
