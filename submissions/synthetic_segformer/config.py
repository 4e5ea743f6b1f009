# SegFormer (Xie et al., NeurIPS 2021) from MMSegmentation's zoo: the MiT-B0 encoder at half
# width (embedding dims 16/32/80/128 instead of 32/64/160/256) with an MLP decoder of 128
# channels, for the SYNTHETIC benchmark's 7 classes at 128x128. Trained by `frugalbench train`
# from random initialisation (no ImageNet weights).
_base_ = ['mmseg::_base_/models/segformer_mit-b0.py']

norm_cfg = dict(type='BN', requires_grad=True)
num_classes = 7
crop_size = (128, 128)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(embed_dims=16, num_heads=[1, 2, 5, 8]),
    decode_head=dict(in_channels=[16, 32, 80, 128], channels=128, num_classes=num_classes,
                     norm_cfg=norm_cfg, ignore_index=255,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                                      avg_non_ignore=True)),
    test_cfg=dict(mode='whole'))

# Read by `frugalbench train` (the harness owns the data pipeline and the budget).
train_schedule = dict(
    iters=300, batch_size=8, crop_size=crop_size,
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.01),
    poly_power=0.9, eta_min=1e-5, num_workers=0, checkpoint_interval=100)
