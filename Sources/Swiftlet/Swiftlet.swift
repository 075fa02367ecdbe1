@_exported import GuestMemory
