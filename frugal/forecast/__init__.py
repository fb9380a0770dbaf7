"""Learning-curve forecasting: curve fits and their families (`curves`, `curve_families`), the
calibrated intervals (`conformal`, `calibration.json`), and the labels and energy a target
needs (`planning`)."""
