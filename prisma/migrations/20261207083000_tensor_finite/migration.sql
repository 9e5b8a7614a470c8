-- float32 tensors: whether every element is finite, known from the upload (null: not known yet)
ALTER TABLE "Tensor" ADD COLUMN "finite" BOOLEAN;
