import CycloneCLI

await Cyclone.main()
