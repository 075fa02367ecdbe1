import Virtio
