import GuestMemory

/// The kernel command line: NUL-terminated bytes at a fixed address that cmd_line_ptr (or the PVH
/// start_info's cmdline_paddr) points at.
public enum KernelCommandLine {
    /// Writes `text` and its NUL at `address`.
    ///
    /// - Parameter maximum: the kernel's cmdline_size (the longest command line without the NUL it accepts;
    ///   Linux would silently cut a longer one, so it is rejected here instead).
    public static func write(_ text: String, maximum: Int, to memory: GuestMemory,
                             at address: GuestAddress = BootLayout.commandLine) throws(BootError) {
        var bytes = Array(text.utf8)
        let limit = min(maximum, Int(BootLayout.commandLineMaxSize) - 1)
        guard bytes.count <= limit else { throw .commandLineTooLong(length: bytes.count, maximum: limit) }
        bytes.append(0)
        try writing("command line at \(address)") { () throws(GuestMemoryError) in try memory.write(bytes, at: address) }
    }
}
