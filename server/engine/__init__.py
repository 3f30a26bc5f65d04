"""One loaded model's inference engine (the only package that touches llama.cpp)."""
