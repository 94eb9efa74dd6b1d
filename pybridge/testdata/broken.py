import KSR


def mod_init():
    return 1 / 0
