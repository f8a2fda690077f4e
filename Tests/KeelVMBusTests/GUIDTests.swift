import Testing
@testable import KeelVMBus

@Suite struct GUIDTests {
    @Test func heartbeatWireBytesAreMixedEndian() {
        let hex = VMBusDeviceClass.heartbeat.wireBytes.hex
        #expect(hex == "394f16571591784eab55382f3bd5422d")
        #expect(VMBusDeviceClass.heartbeat.description == "57164f39-9115-4e78-ab55-382f3bd5422d")
    }

    @Test func deviceClassModaliasesMatchTheDoc() {
        let expected: [(VMBusGUID, String)] = [
            (VMBusDeviceClass.shutdown, "31600b0e13523449818b38d90ced39db"),
            (VMBusDeviceClass.timeSync, "30e62795aed07b49adcee80ab0175caf"),
            (VMBusDeviceClass.kvp, "e7f4a0a9455a964db8278a841e8c03e6"),
            (VMBusDeviceClass.vss, "292efa3523ea364296ae3a6ebacba440"),
            (VMBusDeviceClass.scsi, "d96361baa104294db60572e2ffb1dc7f"),
            (VMBusDeviceClass.network, "635161f83edfc546913ff2d2f965ed0e"),
            (VMBusDeviceClass.dynamicMemory, "dc7450528589e2468057a307dc18a502"),
            (VMBusDeviceClass.keyboard, "6dad12f9172bea48bd65f927a61c7684"),
            (VMBusDeviceClass.mouse, "9eb6a8cf4a5bc04cb98b8ba1a1f3f95a"),
            (VMBusDeviceClass.video, "02780ada77e3ac4a8e770558eb1073f8"),
        ]
        for (guid, hex) in expected {
            #expect(guid.wireBytes.hex == hex)
            #expect(VMBusGUID(wireBytes: guid.wireBytes) == guid)
        }
    }

    @Test func parsingRejectsMalformedText() {
        #expect(VMBusGUID("not-a-guid") == nil)
        #expect(VMBusGUID("57164f39-9115-4e78-ab55-382f3bd5422") == nil)
        #expect(VMBusGUID("57164f39-9115-4e78-ab55-382f3bd5422g") == nil)
        #expect(VMBusGUID("{57164F39-9115-4E78-AB55-382F3BD5422D}") == VMBusDeviceClass.heartbeat)
    }
}
