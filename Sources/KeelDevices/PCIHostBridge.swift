import Synchronization

/// PCI configuration mechanism #1 and bus 0, with an i440FX-style host bridge at 00:00.0
/// (vendor 0x8086, device 0x1237, class 0x060000, header type 0).
///
/// Register at port 0xCF8, length 8. A dword access at 0xCF8 is CONFIG_ADDRESS (bit 31 enable,
/// bus in bits 16-23, device 11-15, function 8-10, register 2-7; reserved bits read 0).
/// 0xCFC-0xCFF is CONFIG_DATA, with byte, word and dword accesses at any offset that stays
/// inside the dword. Byte accesses at 0xCF9 go to the `ResetControl` given at init (there is
/// no other path to it, so do not register it separately). Other narrow accesses at
/// 0xCF8-0xCFB, data accesses with the enable bit clear, other buses and empty slots read
/// all-ones and ignore writes.
///
/// Functions are attached with `attach(_:device:function:)`, normally before the VM starts.
public final class PCIHostBridge: PortDevice {
    /// Why `attach` refused a function.
    public enum AttachError: Error, Equatable {
        case invalidSlot(device: Int, function: Int)
        case occupied(device: Int, function: Int)
    }

    private let address = Mutex<UInt32>(0)
    private let slots: Mutex<[(any PCIFunction)?]>
    private let resetControl: ResetControl?

    /// - Parameter resetControl: the device behind byte accesses to port 0xCF9.
    public init(resetControl: ResetControl? = nil) {
        self.resetControl = resetControl
        var table = [(any PCIFunction)?](repeating: nil, count: 32 * 8)
        table[0] = HostBridgeFunction()
        self.slots = Mutex(table)
    }

    /// Attaches `pciFunction` at bus 0, `device` (0-31), `function` (0-7).
    public func attach(_ pciFunction: any PCIFunction, device: Int, function: Int) throws(AttachError) {
        guard (0..<32).contains(device), (0..<8).contains(function) else {
            throw .invalidSlot(device: device, function: function)
        }
        let index = device * 8 + function
        let attached = slots.withLock { table -> Bool in
            guard table[index] == nil else { return false }
            table[index] = pciFunction
            return true
        }
        guard attached else { throw .occupied(device: device, function: function) }
    }

    /// The function at (bus 0, `device`, `function`), if any.
    public func function(device: Int, function: Int) -> (any PCIFunction)? {
        guard (0..<32).contains(device), (0..<8).contains(function) else { return nil }
        return slots.withLock { $0[device * 8 + function] }
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        switch offset {
        case 0 where size == 4:
            return address.withLock { $0 }
        case 1 where size == 1:
            return resetControl?.portRead(offset: 0, size: 1) ?? 0xFF
        case 4...7:
            guard let (target, register) = target(dataOffset: Int(offset) - 4, size: size) else {
                return PortAccess.mask(size)
            }
            return target.configRead(offset: register, size: size)
        default:
            return PortAccess.mask(size)
        }
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        switch offset {
        case 0 where size == 4:
            address.withLock { $0 = value & 0x80FF_FFFC }
        case 1 where size == 1:
            resetControl?.portWrite(offset: 0, size: 1, value: value)
        case 4...7:
            guard let (target, register) = target(dataOffset: Int(offset) - 4, size: size) else {
                return
            }
            target.configWrite(offset: register, size: size, value: value)
        default:
            break
        }
    }

    /// The function and register a CONFIG_DATA access reaches, or nil (all-ones/ignored).
    private func target(dataOffset: Int, size: Int) -> (any PCIFunction, Int)? {
        guard size == 1 || size == 2 || size == 4, dataOffset % size == 0 else { return nil }
        let address = self.address.withLock { $0 }
        guard address & 0x8000_0000 != 0, (address >> 16) & 0xFF == 0 else { return nil }
        let slot = Int((address >> 8) & 0xFF)   // device * 8 + function
        guard let function = slots.withLock({ $0[slot] }) else { return nil }
        return (function, Int(address & 0xFC) + dataOffset)
    }
}

/// 00:00.0, the host bridge itself. Only the command register's memory/bus-master bits and the
/// latency timer are writable; the rest is fixed.
private final class HostBridgeFunction: PCIFunction {
    private let space: Mutex<PCIConfigSpace>

    init() {
        var space = PCIConfigSpace(vendorID: 0x8086, deviceID: 0x1237, classCode: 0x06_0000,
                                   revision: 0x02)
        space.set(offset: 0x04, size: 2, value: 0x0006)       // memory space, bus master
        space.set(offset: 0x06, size: 2, value: 0x0280)       // medium DEVSEL, fast back-to-back
        space.setWritable(offset: 0x04, size: 2, mask: 0x0006)
        space.setWritable(offset: 0x0D, size: 1, mask: 0xFF)  // latency timer
        self.space = Mutex(space)
    }

    func configRead(offset: Int, size: Int) -> UInt32 {
        space.withLock { $0.read(offset: offset, size: size) }
    }

    func configWrite(offset: Int, size: Int, value: UInt32) {
        space.withLock { $0.write(offset: offset, size: size, value: value) }
    }
}
