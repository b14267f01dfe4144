"""fontgen: complete CJK fonts with a category-embedded Zi2Zi GAN."""

__version__ = "0.1.0"
