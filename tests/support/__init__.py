"""What the tests share: synthetic images, daemon helpers, and the real GIMP 3 in a Debian chroot with its driver."""
