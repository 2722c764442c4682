import LabelIngest

await LabelIngestFunction.main()
