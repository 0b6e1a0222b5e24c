"""A small CIR model that learns hpbench's generated demo dataset on a CPU in minutes."""

from models_zoo.demo.loading import load, load_demo_model, save_demo_model
from models_zoo.demo.model import DemoCIR, DemoConfig, build_vocab, tokenize_words

__all__ = ["DemoCIR", "DemoConfig", "build_vocab", "load", "load_demo_model", "save_demo_model", "tokenize_words"]
