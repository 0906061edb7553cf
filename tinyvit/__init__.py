"""tinyvit: a ViT classifier/detector family that converts to static, <= 4-D,
int8 TFLite graphs (config, model, data, train, export, lowrank, detect,
pretrained)."""
