"""The learned front end (engine v3): a small convolutional encoder over 1 s log-mel
windows of the 8 kHz signal, trained contrastively to survive rooms, noise and codecs.

``model``: signal → log-mel → windows → unit-length 64-d embeddings (NumPy forward
pass of the committed ``weights.npz``; :func:`model.weights_sha256` names them).
``search``: int8 reference of embeddings every 0.5 s, and sequence-level search of a
clip's embeddings every 0.1 s. Training lives in ``train/learned/`` (script, recipe, seed).
"""
