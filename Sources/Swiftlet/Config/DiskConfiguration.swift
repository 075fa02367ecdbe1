#if canImport(Glibc)
import Glibc
#endif

/// A raw disk image attached as a virtio-blk device.
public struct DiskConfiguration: Sendable, Equatable, Codable {
    public var path: String
    public var readOnly: Bool
    /// The serial number the guest reads with VIRTIO_BLK_T_GET_ID (at most 20 bytes), e.g. for /dev/disk/by-id.
    public var id: String?

    /// The id the machine's device registry and snapshot overrides know this disk by: `id` (the API's `drive_id`),
    /// or `drive0`, `drive1`, ... by its position among the disks.
    func registryID(position: Int) -> String { id ?? "drive\(position)" }

    public init(path: String, readOnly: Bool = false, id: String? = nil) {
        self.path = path
        self.readOnly = readOnly
        self.id = id
    }

    public func validate() throws(ConfigurationError) {
        if let id, id.utf8.count > 20 { throw .invalidDisk(path, reason: "id '\(id)' is longer than 20 bytes") }
        var info = stat()
        guard stat(path, &info) == 0 else { throw .invalidDisk(path, reason: String(cString: strerror(errno))) }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else { throw .invalidDisk(path, reason: "not a regular file or block device") }
        guard access(path, readOnly ? R_OK : R_OK | W_OK) == 0 else {
            let reason = String(cString: strerror(errno))
            throw .invalidDisk(path, reason: readOnly ? reason : "\(reason) (add ,readonly to attach it read-only)")
        }
    }
}
