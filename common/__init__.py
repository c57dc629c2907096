"""Framework-free core of skydistill: no Flower or Ray imports live here."""
