#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Devices

// The binary form of the sections a restore always reads (SectionCoding.swift has the encoding's rules). Each
// type's fields are written and read in the same order, one line each; docs/snapshots.md lists them.

extension MachineSection: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        writer.write(payloadKind == .linux)
        writer.write(payloadPath)
        writer.write(optional: rawImageMode)
        writer.write(UInt32(vcpuCount))
        writer.write(memoryBytes)
        writer.write(console)
        writer.write(inKernelIRQChip)
        writer.write(savedAtUnixNanoseconds)
        writer.write(hostRefused)
        // A Linux guest's configuration stays JSON: a large, still-growing tree of user settings, read once.
        writer.write(optional: configuration) { $0.write(bytes: SnapshotSection.encodeJSON($1)) }
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        payloadKind = try reader.bool("the payload kind") ? .linux : .rawImage
        payloadPath = try reader.string("the payload path")
        rawImageMode = try reader.optionalString("the raw image mode")
        vcpuCount = Int(try reader.integer("the vCPU count") as UInt32)
        memoryBytes = try reader.integer("the memory size")
        console = try reader.string("the console")
        inKernelIRQChip = try reader.bool("the irqchip flag")
        savedAtUnixNanoseconds = try reader.integer("the save time")
        hostRefused = try reader.strings("refused state")
        configuration = try reader.optional("the configuration") { reader throws(SectionDecodingError) in
            let json = try reader.bytes("the configuration")
            do { return try JSONDecoder().decode(MachineConfiguration.self, from: Data(json)) } catch {
                throw SectionDecodingError(reason: "the configuration: \(error)")
            }
        }
        try reader.finish()
    }
}

extension HostSection: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        writer.write(bootID)
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        bootID = try reader.string("the boot ID")
        try reader.finish()
    }
}

extension MemorySection: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        writer.write(file)
        writer.write(pageSize)
        writer.write(fileSize)
        writer.write(UInt32(regions.count))
        for region in regions {
            writer.write(region.guestAddress)
            writer.write(region.size)
            writer.write(region.fileOffset)
        }
        writer.write(bytesWritten)
        writer.write(optional: kind)
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        file = try reader.string("the memory file name")
        pageSize = try reader.integer("the page size")
        fileSize = try reader.integer("the file size")
        let count = try reader.count("regions", minimumElementSize: 24)
        regions = []
        for _ in 0..<count {
            regions.append(Region(guestAddress: try reader.integer("a region"), size: try reader.integer("a region"),
                                  fileOffset: try reader.integer("a region")))
        }
        bytesWritten = try reader.integer("the bytes written")
        kind = try reader.optionalString("the kind")
        try reader.finish()
    }
}

extension SectionWriter {
    /// A kernel struct carried whole (`KVMStateBlob`'s bytes), or its absence.
    mutating func write(blob: Data?) { write(optional: blob) { $0.write(bytes: $1) } }
}

extension SectionReader {
    mutating func blob(_ what: String) throws(SectionDecodingError) -> Data? {
        try optional(what) { reader throws(SectionDecodingError) in Data(try reader.bytes(what)) }
    }
}

extension VMSection: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        for blob in [picMaster, picSlave, ioapic, pit, clock] { writer.write(blob: blob) }
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        picMaster = try reader.blob("the PIC master")
        picSlave = try reader.blob("the PIC slave")
        ioapic = try reader.blob("the IOAPIC")
        pit = try reader.blob("the PIT")
        clock = try reader.blob("the clock")
        try reader.finish()
    }
}

extension VCPUSection: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        writer.write(id)
        writer.write(bytes: registers)
        writer.write(bytes: specialRegisters)
        for blob in [fpu, xsave, xcrs, debugRegisters, lapic, events] { writer.write(blob: blob) }
        writer.write(optional: mpState)
        writer.write(optional: tscKHz)
        writer.write(UInt32(cpuid.count))
        for entry in cpuid {
            for value in [entry.function, entry.index, entry.flags, entry.eax, entry.ebx, entry.ecx, entry.edx] { writer.write(value) }
        }
        writer.write(UInt32(msrs.count))
        for msr in msrs {
            writer.write(msr.index)
            writer.write(msr.value)
        }
        writer.write(refused)
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        id = try reader.integer("the vCPU id")
        registers = Data(try reader.bytes("the registers"))
        specialRegisters = Data(try reader.bytes("the special registers"))
        fpu = try reader.blob("the FPU")
        xsave = try reader.blob("the XSAVE area")
        xcrs = try reader.blob("the XCRs")
        debugRegisters = try reader.blob("the debug registers")
        lapic = try reader.blob("the local APIC")
        events = try reader.blob("the vCPU events")
        mpState = try reader.optionalInteger("the MP state")
        tscKHz = try reader.optionalInteger("the TSC frequency")
        let entries = try reader.count("CPUID entries", minimumElementSize: 28)
        cpuid = []
        cpuid.reserveCapacity(entries)
        for _ in 0..<entries {
            cpuid.append(CPUID(function: try reader.integer("a CPUID entry"), index: try reader.integer("a CPUID entry"),
                               flags: try reader.integer("a CPUID entry"), eax: try reader.integer("a CPUID entry"),
                               ebx: try reader.integer("a CPUID entry"), ecx: try reader.integer("a CPUID entry"),
                               edx: try reader.integer("a CPUID entry")))
        }
        let count = try reader.count("MSRs", minimumElementSize: 12)
        msrs = []
        msrs.reserveCapacity(count)
        for _ in 0..<count { msrs.append(MSR(index: try reader.integer("an MSR"), value: try reader.integer("an MSR"))) }
        refused = try reader.strings("refused state")
        try reader.finish()
    }
}

extension Serial8250.State: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        for register in [divisorLatchLow, divisorLatchHigh, interruptEnable, fifoControl, lineControl, modemControl, scratch] {
            writer.write(register)
        }
        writer.write(transmitterEmptyPending)
        writer.write(overrunError)
        writer.write(modemStatusDeltas)
        writer.write(bytes: receiveFIFO)
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        self.init()
        divisorLatchLow = try reader.integer("DLL")
        divisorLatchHigh = try reader.integer("DLM")
        interruptEnable = try reader.integer("IER")
        fifoControl = try reader.integer("FCR")
        lineControl = try reader.integer("LCR")
        modemControl = try reader.integer("MCR")
        scratch = try reader.integer("SCR")
        transmitterEmptyPending = try reader.bool("the THR-empty latch")
        overrunError = try reader.bool("the overrun flag")
        modemStatusDeltas = try reader.integer("the MSR deltas")
        receiveFIFO = try reader.bytes("the receive FIFO")
        try reader.finish()
    }
}

extension I8042.State: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        writer.write(commandByte)
        writer.write(outputPort)
        writer.write(optional: pendingControllerCommand)
        writer.write(optional: pendingKeyboardCommand)
        writer.write(lastWriteWasCommand)
        writer.write(keyboardScanning)
        writer.write(bytes: outputBuffer)
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        self.init()
        commandByte = try reader.integer("the command byte")
        outputPort = try reader.integer("the output port")
        pendingControllerCommand = try reader.optionalInteger("a pending controller command")
        pendingKeyboardCommand = try reader.optionalInteger("a pending keyboard command")
        lastWriteWasCommand = try reader.bool("the last-write flag")
        keyboardScanning = try reader.bool("the scanning flag")
        outputBuffer = try reader.bytes("the output buffer")
        try reader.finish()
    }
}

extension CMOSRTC.State: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        writer.write(index)
        writer.write(nmiMasked)
        writer.write(bytes: ram)
        writer.write(clockOffset)
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        self.init()
        index = try reader.integer("the index register")
        nmiMasked = try reader.bool("the NMI mask")
        ram = try reader.bytes("the CMOS RAM")
        clockOffset = try reader.integer("the clock offset")
        try reader.finish()
    }
}

extension VMGenerationID.State: BinarySnapshotSection {
    func write(to writer: inout SectionWriter) {
        writer.write(address)
        writer.write(gsi)
    }

    init(from reader: inout SectionReader) throws(SectionDecodingError) {
        self.init(address: try reader.integer("the ID's address"), gsi: try reader.integer("the GSI"))
        try reader.finish()
    }
}
