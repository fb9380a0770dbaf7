"""What a run is judged by: the evaluation of every model (`evaluation`), the figures
(`plots`), the HTML page (`page`) and the terminal summary (`summary`)."""
