"""The torch detectors (autoencoder, VAE, BiGAN, sequence autoencoder) and what they share
(``layers``: network building blocks; ``dense``: tensors, state and shares). Importing the registry in
``engine.detectors`` does not import this package; a detector's module is loaded when it is asked for."""
