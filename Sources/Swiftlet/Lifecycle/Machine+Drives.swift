import Virtio

extension Machine {
    /// Points the disk `id` (its `DeviceRegistry` id: Firecracker's `drive_id`) at the image `path`, while the
    /// guest runs or is paused. The new image is opened and locked with the disk's read-only setting before the
    /// old one is let go, so a failure changes nothing; the guest learns the new size from a configuration change.
    public func replaceDrive(id: String, path: String) throws(MachineError) {
        guard let drive = devices.drive(id: id) else {
            throw .configuration(.invalidDisk(id, reason: "no drive with this id (drives: \(devices.drives.map(\.id).joined(separator: ", ")))"))
        }
        do {
            let image = try RawDiskImage(path: path, readOnly: drive.config.readOnly)
            try drive.replaceImage(image)
        } catch {
            throw .configuration(.invalidDisk(path, reason: "\(error)"))
        }
    }
}
