"""raitner-hub: Retrieval Augmented Instruction Tuning (RA-IT) for open NER on the Hugging Face Hub."""

__version__ = "0.1.0"
