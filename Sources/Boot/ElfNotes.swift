import GuestMemory

/// ELF notes (gABI "Note Section"): a run of records
///
///     namesz u32, descsz u32, type u32, name (namesz bytes, padded to 4), desc (descsz bytes, padded to 4)
///
/// The one a loader cares about is Xen's XEN_ELFNOTE_PHYS32_ENTRY (type 18, name "Xen"): the physical
/// address of the kernel's 32-bit PVH entry (Linux: pvh_start_xen, arch/x86/platform/pvh/head.S, emitted
/// as a pointer-sized value, 8 bytes in a 64-bit kernel). Defined in Xen's public/elfnote.h.
public enum ElfNotes {
    public static let xenPhys32EntryType: UInt32 = 18

    public struct Note: Equatable, Sendable {
        public var name: String
        public var type: UInt32
        public var descriptor: [UInt8]
    }

    /// All notes in `bytes[range]`; a record that runs past the range is an error.
    public static func parse(_ bytes: [UInt8], range: Range<Int>) throws(BootError) -> [Note] {
        var notes: [Note] = []
        var position = range.lowerBound
        func padded(_ size: UInt32) -> Int { (Int(size) + 3) & ~3 }
        while range.upperBound - position >= 12 {
            let nameSize = bytes.le32(at: position)!
            let descriptorSize = bytes.le32(at: position + 4)!
            let type = bytes.le32(at: position + 8)!
            position += 12
            // Sizes come from the file: compare against what is left before doing arithmetic on them.
            let left = range.upperBound - position
            guard UInt64(nameSize) <= UInt64(left), padded(nameSize) <= left,
                  UInt64(descriptorSize) <= UInt64(left - padded(nameSize)) else {
                throw .invalidELF("note of type \(type) (name \(nameSize) bytes, descriptor \(descriptorSize) bytes) "
                    + "runs past the end of its segment")
            }
            // The name is NUL-terminated and namesz counts the NUL.
            let name = String(decoding: bytes[position..<(position + Int(nameSize))].prefix { $0 != 0 }, as: UTF8.self)
            position += padded(nameSize)
            let descriptor = Array(bytes[position..<(position + Int(descriptorSize))])
            position += min(padded(descriptorSize), range.upperBound - position)
            notes.append(Note(name: name, type: type, descriptor: descriptor))
        }
        return notes
    }

    /// The PVH entry from the notes in `bytes[range]`, if there is one.
    static func pvhEntry(in bytes: [UInt8], range: Range<Int>) throws(BootError) -> GuestAddress? {
        guard let note = try parse(bytes, range: range).first(where: { $0.name == "Xen" && $0.type == xenPhys32EntryType }) else {
            return nil
        }
        let value: UInt64
        switch note.descriptor.count {
        case 4: value = UInt64(note.descriptor.le32(at: 0)!)
        case 8: value = note.descriptor.le64(at: 0)!
        default:
            throw .invalidELF("XEN_ELFNOTE_PHYS32_ENTRY has a \(note.descriptor.count)-byte value (need 4 or 8)")
        }
        // It is entered in 32-bit protected mode with paging off, so it must be below 4 GiB.
        guard value <= UInt64(UInt32.max) else {
            throw .invalidELF("PVH entry 0x\(String(value, radix: 16)) is above 4 GiB")
        }
        return GuestAddress(value)
    }
}
