"""The clustering stage (`unsuprnn cluster`): SCAN's pieces (`scan`), one epoch of each phase (`epoch`)
and the stage that trains them into a run directory (`stage`)."""
