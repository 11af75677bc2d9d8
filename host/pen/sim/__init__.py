"""The village simulator: the firmware's own MeshNode (imported from
firmware/, never copied) on a simulated LoRa medium, with a Meshtastic-style
flooding baseline on the same topology and load. See docs/sim.md."""
