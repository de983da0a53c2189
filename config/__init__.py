"""Campaign configuration: typed models and the YAML loader. Imports nothing of ours."""
from cpaudit.config.loader import ConfigError, Problem, load, load_text
from cpaudit.config.models import ENV, Config, DataType, TagKind, WordOrder

__all__ = ["ENV", "Config", "ConfigError", "DataType", "Problem", "TagKind", "WordOrder",
           "load", "load_text"]
