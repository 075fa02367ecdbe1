import GuestMemory
import KVM

/// Why a snapshot could not be saved or restored. Every file problem names the file.
public enum SnapshotError: Error, Equatable, CustomStringConvertible {
    /// Save needs a paused machine (its vCPUs parked outside KVM_RUN, its device loop quiet).
    case notPaused(MachineState)
    /// The machine has something the snapshot format cannot carry yet.
    case unsupported(String)
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// Not a Swiftlet snapshot: the magic is wrong (or the file is shorter than it).
    case notASnapshot(path: String, reason: String)
    /// The file is shorter than its header says: cut off while copying or writing.
    case truncated(path: String, actual: UInt64, expected: UInt64)
    /// Written by a newer Swiftlet, in a format version this one does not know.
    case newerVersion(path: String, version: UInt32, supported: UInt32)
    /// The CRC-32 over the file does not match the one stored at its end: the file was changed or damaged.
    case checksumMismatch(path: String, stored: UInt32, computed: UInt32)
    /// The container is inconsistent (bad lengths, counts, names).
    case malformed(path: String, reason: String)
    /// A section the snapshot needs is not in the file.
    case missingSection(path: String, name: String)
    /// A section's contents cannot be used (undecodable JSON, a value out of range, state of the wrong size).
    case invalidSection(path: String, name: String, reason: String)
    /// The memory file is missing, of the wrong size, or cannot be mapped or written.
    case memory(GuestMemoryError)
    /// A file of the snapshot could not be written.
    case writeFailed(path: String, reason: String)
    /// KVM refused to give or take a piece of state the snapshot cannot do without.
    case kvm(operation: String, KVMError)
    /// Building the restored machine failed.
    case machine(String)

    public var description: String {
        switch self {
        case let .notPaused(state): return "cannot save a snapshot of a machine that is \(state): pause it first"
        case let .unsupported(what): return "cannot snapshot this machine: \(what)"
        case let .unreadable(path, reason): return "cannot read snapshot file \(path): \(reason)"
        case let .notASnapshot(path, reason): return "\(path) is not a Swiftlet snapshot: \(reason)"
        case let .truncated(path, actual, expected):
            return "snapshot file \(path) is truncated: it is \(actual) bytes, its header says \(expected)"
        case let .newerVersion(path, version, supported):
            return "snapshot file \(path) has format version \(version), newer than this Swiftlet reads (up to \(supported))"
        case let .checksumMismatch(path, stored, computed):
            return "snapshot file \(path) is corrupted: its CRC-32 is 0x\(String(computed, radix: 16)), the file says 0x\(String(stored, radix: 16))"
        case let .malformed(path, reason): return "snapshot file \(path) is malformed: \(reason)"
        case let .missingSection(path, name): return "snapshot file \(path) has no \"\(name)\" section"
        case let .invalidSection(path, name, reason): return "snapshot file \(path), section \"\(name)\": \(reason)"
        case let .memory(error): return error.description
        case let .writeFailed(path, reason): return "cannot write snapshot file \(path): \(reason)"
        case let .kvm(operation, error): return "\(operation): \(error)"
        case let .machine(detail): return "cannot build the restored machine: \(detail)"
        }
    }
}
