"""The bridge: joins a village mesh (through a bridge node on a serial link)
to one or more CTB peers on the internet. See docs/bridge.md."""
