"""Which examples to label next: annotation strategies simulated on the cached embeddings
(`sampling`), and people labeling through export / import (`annotation`)."""
