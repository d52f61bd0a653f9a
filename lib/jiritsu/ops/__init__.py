"""Operations: health checks (:mod:`.health`), database backups (:mod:`.backup`), systemd unit
rendering (:mod:`.systemd`) and the systemd notification protocol (:mod:`.sdnotify`).

Importing this package is cheap on purpose: the health timer starts the CLI every five minutes.
"""
