//! Python's pickle format, for values exchanged with Python.
