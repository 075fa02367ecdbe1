import GuestMemory

/// An uncompressed kernel as an ELF64 executable: `vmlinux`, the payload of a bzImage, or a test guest.
///
/// The loader copies each PT_LOAD segment to its physical address p_paddr (that is where a kernel linked
/// at 0xffffffff81000000 expects to sit in RAM), zero-fills the p_memsz - p_filesz tail, and enters at
/// e_entry, which a vmlinux already gives as a physical address (its linker script says
/// ENTRY(phys_startup_64)). Layouts: the System V gABI, "ELF Header" and "Program Header"; the x86-64 psABI.
public struct ElfKernel: Sendable {
    public struct Segment: Equatable, Sendable {
        public var fileOffset: UInt64
        public var virtualAddress: UInt64
        public var physicalAddress: GuestAddress
        public var fileSize: UInt64
        public var memorySize: UInt64
        /// PF_X = 1, PF_W = 2, PF_R = 4.
        public var flags: UInt32

        /// One past the segment's last byte in guest-physical memory (checked at parse time not to wrap).
        public var physicalEnd: GuestAddress { physicalAddress.adding(memorySize) }
    }

    /// The whole file; segments are copied out of it.
    public let bytes: [UInt8]
    /// e_entry as written in the file.
    public let rawEntry: UInt64
    /// The physical entry point: e_entry itself when it lies in a segment's physical range, otherwise
    /// e_entry translated through the segment whose virtual range holds it.
    public let entry: GuestAddress
    /// PT_LOAD segments in file order.
    public let segments: [Segment]
    /// The 32-bit PVH entry from the XEN_ELFNOTE_PHYS32_ENTRY note, if the kernel has one (CONFIG_PVH).
    public let pvhEntry: GuestAddress?

    // ELF constants (gABI; EM_X86_64 from the psABI).
    static let elfClass64: UInt8 = 2
    static let elfDataLittleEndian: UInt8 = 1
    static let executableType: UInt16 = 2      // ET_EXEC
    static let machineX86_64: UInt16 = 62      // EM_X86_64
    static let headerSize = 64
    static let programHeaderSize = 56
    static let loadSegment: UInt32 = 1         // PT_LOAD
    static let noteSegment: UInt32 = 4         // PT_NOTE

    /// True when `bytes` starts with the ELF magic (whatever else may be wrong with it).
    public static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46])
    }

    public init(_ bytes: [UInt8]) throws(BootError) {
        guard Self.hasMagic(bytes) else { throw .invalidELF("no ELF magic (7f 'E' 'L' 'F')") }
        guard bytes.count >= Self.headerSize else {
            throw .truncated(what: "ELF header", needed: UInt64(Self.headerSize), available: UInt64(bytes.count))
        }
        // e_ident: class, data encoding, version.
        guard bytes[4] == Self.elfClass64 else { throw .invalidELF("ELF class \(bytes[4]), need 2 (64-bit)") }
        guard bytes[5] == Self.elfDataLittleEndian else { throw .invalidELF("data encoding \(bytes[5]), need 1 (little-endian)") }
        guard bytes[6] == 1 else { throw .invalidELF("ELF version \(bytes[6])") }
        // The header is complete (checked above), so these reads cannot fail.
        let type = bytes.le16(at: 16)!
        let machine = bytes.le16(at: 18)!
        let entry = bytes.le64(at: 24)!
        let programHeaderOffset = bytes.le64(at: 32)!
        let programHeaderEntrySize = bytes.le16(at: 54)!
        let programHeaderCount = bytes.le16(at: 56)!
        guard machine == Self.machineX86_64 else { throw .invalidELF("machine \(machine), need 62 (x86-64)") }
        guard type == Self.executableType else { throw .invalidELF("type \(type), need 2 (ET_EXEC, an executable)") }
        guard programHeaderEntrySize == Self.programHeaderSize else {
            throw .invalidELF("program header entries of \(programHeaderEntrySize) bytes, need 56")
        }
        // 0xffff (PN_XNUM) would move the real count into a section header; no kernel needs that many.
        guard programHeaderCount > 0, programHeaderCount < 0xffff else {
            throw .invalidELF("\(programHeaderCount) program headers")
        }
        let tableSize = UInt64(programHeaderCount) * UInt64(Self.programHeaderSize)
        guard let table = bytes.checkedRange(offset: programHeaderOffset, count: tableSize) else {
            throw .truncated(what: "\(programHeaderCount) program headers at offset \(programHeaderOffset)",
                             needed: programHeaderOffset.addingReportingOverflow(tableSize).partialValue,
                             available: UInt64(bytes.count))
        }

        var segments: [Segment] = []
        var notes: [Range<Int>] = []
        for index in 0..<Int(programHeaderCount) {
            let at = table.lowerBound + index * Self.programHeaderSize
            let type = bytes.le32(at: at)!
            let segment = Segment(fileOffset: bytes.le64(at: at + 8)!, virtualAddress: bytes.le64(at: at + 16)!,
                                  physicalAddress: GuestAddress(bytes.le64(at: at + 24)!), fileSize: bytes.le64(at: at + 32)!,
                                  memorySize: bytes.le64(at: at + 40)!, flags: bytes.le32(at: at + 4)!)
            switch type {
            case Self.loadSegment:
                try Self.validate(segment, index: index, fileSize: bytes.count)
                segments.append(segment)
            case Self.noteSegment:
                guard let range = bytes.checkedRange(offset: segment.fileOffset, count: segment.fileSize) else {
                    throw .invalidELF("note segment \(index) (offset \(segment.fileOffset), \(segment.fileSize) bytes) "
                        + "lies outside the \(bytes.count)-byte file")
                }
                notes.append(range)
            default:
                continue
            }
        }
        guard !segments.isEmpty else { throw .invalidELF("no PT_LOAD segment") }
        try Self.checkNoOverlap(segments)

        self.bytes = bytes
        self.rawEntry = entry
        self.segments = segments
        self.entry = try Self.physicalEntry(entry, segments: segments)
        var pvhEntry: GuestAddress?
        for range in notes where pvhEntry == nil {
            pvhEntry = try ElfNotes.pvhEntry(in: bytes, range: range)
        }
        self.pvhEntry = pvhEntry
    }

    /// Lowest physical address of any segment.
    public var physicalStart: GuestAddress { segments.map(\.physicalAddress).min()! }
    /// One past the highest physical byte of any segment (the kernel's `_end`).
    public var physicalEnd: GuestAddress { segments.map(\.physicalEnd).max()! }

    /// Copies every PT_LOAD segment to p_paddr and zero-fills its memory-only tail (.bss).
    public func load(into memory: GuestMemory) throws(BootError) {
        for (index, segment) in segments.enumerated() {
            guard memory.contains(segment.physicalAddress, length: segment.memorySize) else {
                throw .kernelDoesNotFit("segment \(index) at \(segment.physicalAddress) of \(segment.memorySize) bytes "
                    + "is not inside guest RAM")
            }
            let start = Int(segment.fileOffset)
            try writing("ELF segment \(index)") { () throws(GuestMemoryError) in
                try memory.write(bytes[start..<(start + Int(segment.fileSize))], at: segment.physicalAddress)
                if segment.memorySize > segment.fileSize {
                    try memory.zero(at: segment.physicalAddress.adding(segment.fileSize),
                                    count: segment.memorySize - segment.fileSize)
                }
            }
        }
    }

    private static func validate(_ segment: Segment, index: Int, fileSize: Int) throws(BootError) {
        guard segment.memorySize >= segment.fileSize else {
            throw .invalidELF("segment \(index): p_filesz \(segment.fileSize) is larger than p_memsz \(segment.memorySize)")
        }
        let (fileEnd, overflow) = segment.fileOffset.addingReportingOverflow(segment.fileSize)
        guard !overflow, fileEnd <= UInt64(fileSize) else {
            throw .invalidELF("segment \(index) (offset \(segment.fileOffset), \(segment.fileSize) bytes) "
                + "lies outside the \(fileSize)-byte file")
        }
        guard segment.physicalAddress.checkedAdding(segment.memorySize) != nil else {
            throw .invalidELF("segment \(index) at \(segment.physicalAddress) of \(segment.memorySize) bytes wraps past 2^64")
        }
    }

    /// Two segments landing on the same physical bytes would silently overwrite each other.
    private static func checkNoOverlap(_ segments: [Segment]) throws(BootError) {
        let sorted = segments.enumerated().sorted { $0.element.physicalAddress < $1.element.physicalAddress }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.element.memorySize > 0 {
            if next.element.physicalAddress < previous.element.physicalEnd {
                throw .invalidELF("segments \(previous.offset) (\(previous.element.physicalAddress) – "
                    + "\(previous.element.physicalEnd)) and \(next.offset) (at \(next.element.physicalAddress)) overlap")
            }
        }
    }

    private static func physicalEntry(_ entry: UInt64, segments: [Segment]) throws(BootError) -> GuestAddress {
        if segments.contains(where: { entry >= $0.physicalAddress.rawValue && entry < $0.physicalEnd.rawValue }) {
            return GuestAddress(entry)
        }
        // A virtual entry (e.g. 0xffffffff81000000): move it by the same amount as its segment.
        if let segment = segments.first(where: {
            entry >= $0.virtualAddress && entry - $0.virtualAddress < $0.memorySize
        }) {
            return segment.physicalAddress.adding(entry - segment.virtualAddress)
        }
        throw .invalidELF("entry point 0x\(String(entry, radix: 16)) lies in no loadable segment")
    }
}
