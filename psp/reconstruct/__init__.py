"""Layer-output reconstruction shared by PSP, AdaPrune and gAP: hooks, losses, penalties, optimisers."""
